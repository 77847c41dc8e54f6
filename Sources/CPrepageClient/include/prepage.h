/* prepage.h: placeholder until the client issue lands. */
#ifndef PREPAGE_H
#define PREPAGE_H
int pp_placeholder(void);
#endif
