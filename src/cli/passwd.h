/*
 * passwd.h - `petrel passwd`: create and edit Mosquitto-format password files.
 */
#ifndef PETREL_CLI_PASSWD_H
#define PETREL_CLI_PASSWD_H

/* Run the subcommand; argv[0] is "passwd". Returns the process exit status: 0 done, 1 failed,
 * 2 bad usage. */
int cli_passwd(int argc, char **argv);

#endif
