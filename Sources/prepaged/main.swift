print("prepaged: not yet built")
