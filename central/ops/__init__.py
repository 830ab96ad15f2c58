"""Fleet operations: alert rules, notifications, health history, metrics, staff
sign-in and the dashboard.
"""
