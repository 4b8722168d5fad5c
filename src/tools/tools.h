/*
 * tools.h - operator commands that work on a data directory directly:
 * `engram stat` (what is in it) and `engram verify` (is it consistent).
 * Both open the store read-only, so they may run beside a live server.
 */
#ifndef ENGRAM_TOOLS_H
#define ENGRAM_TOOLS_H

/* argv[0] is the command name. Return the process exit code. */
int tools_stat_main(int argc, char **argv);
/* Exit code 0 when clean, 1 when any defect was found, 2 on usage errors. */
int tools_verify_main(int argc, char **argv);

#endif
