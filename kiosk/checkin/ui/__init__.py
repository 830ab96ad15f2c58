"""The check-in touchscreen (Kivy). Import :mod:`.app` only where a window may
open; the view model it mirrors (:mod:`kiosk.checkin.session`) needs no Kivy.
"""
