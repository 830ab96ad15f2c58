"""Card enrolment's screens, as a mode the check-in and counter touchscreens
open from their attract screens (Kivy). Import only where a window may open."""
