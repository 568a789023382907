"""Built dashboard files; a package only so importlib.resources can read them, also from the .pyz."""
