"""The check-in touchscreen. Import :mod:`.app` only where a window may open;
:mod:`.session` (the view model) needs no Kivy.
"""
