"""Lock controller: the only owner of GPIO; fail-secure door state machines
behind a unix-socket API. (Built in the lock controller issue.)"""
