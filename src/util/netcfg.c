/*
 * netcfg.c - outbound connection settings (see netcfg.h).
 */
#include "util/netcfg.h"

#include <stdio.h>

static char ca_bundle[1024];

void net_set_ca_bundle(const char *path)
{
    snprintf(ca_bundle, sizeof ca_bundle, "%s", path ? path : "");
}

const char *net_ca_bundle(void) { return ca_bundle[0] ? ca_bundle : NULL; }
