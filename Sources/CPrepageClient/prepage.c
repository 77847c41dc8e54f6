#include "prepage.h"
int pp_placeholder(void) { return 0; }
