#ifndef CAIO_SHIM_H
#define CAIO_SHIM_H
#define _GNU_SOURCE 1
#include <fcntl.h>
#include <libaio.h>
static const int caio_O_DIRECT = O_DIRECT;
#endif
