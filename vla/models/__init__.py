"""Policy models, one folder per policy (config / model / processor). Not implemented yet."""
