"""The app's four screens (Train, Generate, Chat, Models) and its dialogs."""
