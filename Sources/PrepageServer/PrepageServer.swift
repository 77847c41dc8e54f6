// PrepageServer: placeholder until its issue lands.
