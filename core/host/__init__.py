"""The plugin host: the hooks, what plugins contribute, and how they are found."""
