"""The Kivy touchscreen. Import ``kiosk.ui.app`` only where a window may open;
``kiosk.ui.session`` (the view model) and ``kiosk.ui.theme`` need no Kivy."""
