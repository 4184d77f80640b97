"""Infrastructure: the store (all SQL), the EvoLink client and its simulator, the web server, media
files, metrics, logs and settings."""
