"""What both touchscreens share: the app base, the theme, the session base."""
