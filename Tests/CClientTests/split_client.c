/*
 * split_client.c — libprepage behind a balancer that sends a session's PUTs to
 * one instance and its other requests to another (deploy/test.sh builds it and
 * runs it through such an HAProxy): every re-creation succeeds where the
 * requests after it never arrive, as for a moment when a balancer's ring is
 * changing. The client must re-create a bounded number of times
 * (PP_MAX_RECREATIONS, 3) and then return the 404 — for a fault and for an
 * admin call alike.
 *
 *     split_client URL
 *
 * Creates session "split", posts one fault and gets the session, and prints
 *
 *     create R fault R STATUS get R STATUS
 *
 * (each call's return code, and the HTTP status it ended on). Exit 0 unless
 * the client cannot be made.
 */
#define _POSIX_C_SOURCE 200809L

#include <prepage.h>

#include <stdio.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: split_client URL\n");
        return 2;
    }
    if (pp_global_init() != 0) return 2;
    pp_options o;
    pp_options_init(&o);
    o.base_url = argv[1];
    o.fault_deadline_ms = 2000; /* the re-creations, not the deadline, end the fault */
    pp_client *c = pp_client_new(&o);
    if (c == NULL) return 2;
    int created = pp_session_create(c, "split", NULL);
    pp_decision d;
    pp_decision_init(&d);
    int fault = pp_fault_page(c, "split", 7, 1, &d);
    int fault_status = pp_client_http_status(c);
    pp_session *s = NULL;
    int got = pp_session_get(c, "split", &s);
    int get_status = pp_client_http_status(c);
    printf("create %d fault %d %d get %d %d\n", created, fault, fault_status, got, get_status);
    if (fault != 0 || got != 0) fprintf(stderr, "split_client: %s\n", pp_client_errstr(c));
    pp_session_free(s);
    pp_client_free(c);
    pp_global_cleanup();
    return 0;
}
