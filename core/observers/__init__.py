"""Built-in observers, written on the observer hooks like any third-party plugin would be."""
