"""HTTP layer: the only package (with ``app.py``) that imports FastAPI and Starlette."""
