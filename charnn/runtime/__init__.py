"""The checkpoint format, the run store, device choice and model loading: what every command above training shares."""
