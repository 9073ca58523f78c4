"""What each DVC stage does, one module per study; stages/ only parse arguments and call these."""
