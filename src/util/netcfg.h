/*
 * netcfg.h - process-wide settings for outbound connections, set once at
 * start-up before any thread makes a call, read-only afterwards.
 *
 * net_ca_bundle(): the PEM file of CA certificates that outbound HTTPS
 * (embedding, chat, rerank services, the CLI) verifies servers against; NULL
 * means the TLS library's default (Debian: /etc/ssl/certs/ca-certificates.crt).
 * The static build and appliances with their own trust store set it with
 * --ca-bundle / ENGRAM_CA_BUNDLE.
 */
#ifndef ENGRAM_NETCFG_H
#define ENGRAM_NETCFG_H

void net_set_ca_bundle(const char *path);  /* copied; NULL or "" = default */
const char *net_ca_bundle(void);

#endif
