"""pytest plugin (entry point pytest11): the `gradient_curves` fixture. (In progress.)"""
