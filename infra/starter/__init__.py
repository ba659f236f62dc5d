"""The starter path: a stack file and its engine configs from a few answers (init, add-model)."""
