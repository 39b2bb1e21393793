#ifndef CAIO_SHIM_H
#define CAIO_SHIM_H
/* No _GNU_SOURCE here: defining it makes this module's copy of glibc types (fd_set in
   <sys/select.h>, pulled in by <libaio.h>) differ from SwiftGlibc's, and any Swift file that
   imports both Glibc and CAio then fails to build from a clean tree ("fds_bits ... is not
   present in definition of fd_set"). glibc defines __O_DIRECT unconditionally (O_DIRECT only
   under _GNU_SOURCE), so the value comes from the system headers, correct on every arch. */
#include <fcntl.h>
#include <libaio.h>

static const int caio_O_DIRECT = __O_DIRECT;
static const int caio_O_DSYNC = O_DSYNC;

/* <sys/eventfd.h> is not in SwiftGlibc: EFD_NONBLOCK == O_NONBLOCK, EFD_CLOEXEC == O_CLOEXEC. */
extern int eventfd(unsigned int count, int flags);
static const int caio_EFD_NONBLOCK = O_NONBLOCK;
static const int caio_EFD_CLOEXEC = O_CLOEXEC;

/* ioctl is variadic, which Swift cannot call: wrap the two block-device requests the store
   needs. Values from <linux/fs.h>: BLKGETSIZE64 = _IOR(0x12, 114, size_t), BLKSSZGET =
   _IO(0x12, 104) (the same on x86_64 and aarch64). */
extern int ioctl(int fd, unsigned long request, ...);
static inline int caio_blkgetsize64(int fd, unsigned long long *bytes) {
    return ioctl(fd, (2UL << 30) | (sizeof(unsigned long) << 16) | (0x12 << 8) | 114, bytes);
}
static inline int caio_blksszget(int fd, int *logical_block_bytes) {
    return ioctl(fd, (0x12 << 8) | 104, logical_block_bytes);
}
#endif
