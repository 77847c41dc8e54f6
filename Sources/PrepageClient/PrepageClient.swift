// PrepageClient: placeholder until its issue lands.
