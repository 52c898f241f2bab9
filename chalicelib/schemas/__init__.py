"""API models, named exactly as upstream's ``project_W_lib`` models (``*Request``/``*Response``)."""
