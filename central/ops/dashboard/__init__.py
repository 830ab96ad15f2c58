"""The staff dashboard at ``/``: server-rendered HTML (Jinja2), no front-end
build step. Staff sign in with password and TOTP; roles viewer / operator /
admin; CSRF tokens on every form; sessions expire. Japanese and English."""
