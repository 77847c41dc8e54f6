// PrepageSockets: placeholder until its issue lands.
