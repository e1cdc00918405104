"""The web process: the Flask app (webhooks, the JSON API, /config and the console) and its front doors."""
