"""Wisp: the Chalice app. Wiring only; the code lives in chalicelib/."""
from chalicelib import logs, schedules
from chalicelib.application import WispChalice
from chalicelib.routes import all_routers, docs, fallback

app = WispChalice(app_name="wisp")
logs.configure()

for router in all_routers():
    app.register_blueprint(router.blueprint, url_prefix=router.prefix)
app.register_blueprint(docs.blueprint)
schedules.register(app)
fallback.install(app)
