"""Blueprints, one module per resource; each offers `make_blueprint(suffix)`."""
