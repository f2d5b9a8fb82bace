"""The console's screens: one per kind of object, plus details, logs and dialogs."""
