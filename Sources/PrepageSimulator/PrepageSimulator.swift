// PrepageSimulator: placeholder until its issue lands.
