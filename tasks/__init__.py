"""One module per capability of the server; deploy.py calls them in order."""
