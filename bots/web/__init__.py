"""The web page: upload a photo, watch progress, get the clip; verify any file."""
