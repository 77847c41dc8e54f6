// PrepageHTTP: placeholder until its issue lands.
