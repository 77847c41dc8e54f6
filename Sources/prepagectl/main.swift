print("prepagectl: not yet built")
