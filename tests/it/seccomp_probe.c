/* The probe tests/it/seccomp.rs runs as a RUN step under rbuild and as a
 * container under `docker run`: it tries each family of syscalls Docker's
 * default seccomp profile restricts, and reads each path Docker masks or
 * makes read-only, printing one line per probe, `name: result`, where the
 * result is `ok` or the errno's name. Every call is made harmless should it
 * be allowed (bad arguments, a query, a child that exits at once).
 *
 * `probe euid` prints the effective uid instead (a setuid copy shows that
 * no_new_privs is off).
 *
 * Built static by the test: gcc -static -O1 -o probe seccomp_probe.c */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *errname(int e) {
    switch (e) {
    case EPERM: return "EPERM";
    case ENOSYS: return "ENOSYS";
    case EACCES: return "EACCES";
    case EINVAL: return "EINVAL";
    case ENOENT: return "ENOENT";
    case EROFS: return "EROFS";
    case EFAULT: return "EFAULT";
    case EBADF: return "EBADF";
    case ESRCH: return "ESRCH";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EOPNOTSUPP: return "EOPNOTSUPP";
    case ENODEV: return "ENODEV";
    case ENOTDIR: return "ENOTDIR";
    case ENOEXEC: return "ENOEXEC";
    case E2BIG: return "E2BIG";
    case ENOMEM: return "ENOMEM";
    case EBUSY: return "EBUSY";
    case ENOKEY: return "ENOKEY";
    default: {
        static char buf[32];
        snprintf(buf, sizeof buf, "errno%d", e);
        return buf;
    }
    }
}

/* Prints `name: ok` for rc >= 0, else the errno. */
static void report(const char *name, long rc) {
    printf("%s: %s\n", name, rc >= 0 ? "ok" : errname(errno));
}

/* Runs a raw clone with `flags`; a child that starts exits at once. */
static long try_clone(unsigned long flags) {
    long pid = syscall(SYS_clone, flags | SIGCHLD, 0, 0, 0, 0);
    if (pid == 0) _exit(0);
    if (pid > 0) waitpid((pid_t)pid, NULL, 0);
    return pid;
}

static long try_clone3(void) {
    /* struct clone_args, version 0: flags, pidfd, child_tid, parent_tid,
     * exit_signal, stack, stack_size, tls. */
    uint64_t args[8] = {0, 0, 0, 0, SIGCHLD, 0, 0, 0};
    long pid = syscall(SYS_clone3, args, sizeof args);
    if (pid == 0) _exit(0);
    if (pid > 0) waitpid((pid_t)pid, NULL, 0);
    return pid;
}

/* PTRACE_ATTACH from one child to another: a sibling, not a descendant. */
static void probe_ptrace_sibling(void) {
    pid_t target = fork();
    if (target == 0) {
        pause();
        _exit(0);
    }
    int pipefd[2];
    if (pipe(pipefd) != 0) { report("ptrace_sibling", -1); return; }
    pid_t tracer = fork();
    if (tracer == 0) {
        long rc = syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, target, 0, 0);
        int e = rc == 0 ? 0 : errno;
        if (write(pipefd[1], &e, sizeof e) < 0) _exit(1);
        _exit(0);
    }
    int e = -1;
    waitpid(tracer, NULL, 0);
    if (read(pipefd[0], &e, sizeof e) != sizeof e) e = EFAULT;
    kill(target, SIGKILL);
    waitpid(target, NULL, 0);
    errno = e;
    report("ptrace_sibling", e == 0 ? 0 : -1);
}

#if defined(__x86_64__)
/* A syscall through the i386 ABI (`int $0x80`), which a 32-bit binary in an
 * image uses: the filter must judge it by the i386 table, not kill it. */
static long int80(long nr, long a, long b) {
    long ret;
    __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(a), "c"(b) : "memory");
    if (ret < 0 && ret > -4096) {
        errno = (int)-ret;
        return -1;
    }
    return ret;
}
#endif

static void probe_syscalls(void) {
#if defined(__x86_64__)
    report("i386_getpid", int80(20, 0, 0));
    report("i386_unshare_user", int80(310, CLONE_NEWUSER, 0));
#endif
    report("unshare_user", syscall(SYS_unshare, CLONE_NEWUSER));
    report("unshare_mount", syscall(SYS_unshare, CLONE_NEWNS));
    report("unshare_net", syscall(SYS_unshare, CLONE_NEWNET));
    report("clone_plain", try_clone(0));
    report("clone_newuser", try_clone(CLONE_NEWUSER));
    report("clone_newns", try_clone(CLONE_NEWNS));
    report("clone_newpid", try_clone(CLONE_NEWPID));
    report("clone3", try_clone3());
    int nsfd = open("/proc/self/ns/uts", O_RDONLY | O_CLOEXEC);
    report("setns", syscall(SYS_setns, nsfd, 0));
    if (nsfd >= 0) close(nsfd);
    /* KEYCTL_GET_KEYRING_ID of the session keyring, without creating one. */
    report("keyctl", syscall(SYS_keyctl, 0, -3, 0));
    report("add_key", syscall(SYS_add_key, "user", "rbuild-probe", "x", 1, -2 /* process keyring */));
    report("request_key", syscall(SYS_request_key, "user", "rbuild-probe-none", NULL, 0));
    probe_ptrace_sibling();
    /* perf_event_attr of size 0 with a software event: EINVAL if allowed. */
    char attr[128] = {0};
    report("perf_event_open", syscall(SYS_perf_event_open, attr, 0, -1, -1, 0));
    /* BPF_MAP_CREATE with an empty attr: EINVAL if allowed. */
    char battr[64] = {0};
    report("bpf", syscall(SYS_bpf, 0, battr, sizeof battr));
    long uffd = syscall(SYS_userfaultfd, O_CLOEXEC);
    report("userfaultfd", uffd);
    if (uffd >= 0) close((int)uffd);
    char params[120] = {0};
    long ring = syscall(SYS_io_uring_setup, 1, params);
    report("io_uring_setup", ring);
    if (ring >= 0) close((int)ring);
    mkdir("/tmp/rbuild-probe-mnt", 0755);
    int mounted = mount("none", "/tmp/rbuild-probe-mnt", "tmpfs", 0, NULL);
    report("mount", mounted);
    if (mounted == 0) umount2("/tmp/rbuild-probe-mnt", MNT_DETACH);
    rmdir("/tmp/rbuild-probe-mnt");
    report("umount2", umount2("/nonexistent-umount", UMOUNT_NOFOLLOW));
    report("fsopen", syscall(SYS_fsopen, "tmpfs", 0));
    report("pivot_root", syscall(SYS_pivot_root, "/nonexistent-a", "/nonexistent-b"));
    report("swapon", swapon("/nonexistent-swap", 0));
    report("swapoff", swapoff("/nonexistent-swap"));
    /* An unknown command: EINVAL if allowed and capable. */
    report("reboot", syscall(SYS_reboot, 0xfee1dead, 672274793, 0x12345678, NULL));
    report("kexec_load", syscall(SYS_kexec_load, 0, 0, NULL, 0));
    report("init_module", syscall(SYS_init_module, NULL, 0, ""));
    report("finit_module", syscall(SYS_finit_module, -1, "", 0));
    report("delete_module", syscall(SYS_delete_module, "rbuild_probe_none", 0));
    /* struct file_handle with handle_bytes 8 and a zero handle. */
    unsigned char fh[16] = {8, 0, 0, 0};
    report("open_by_handle_at", syscall(SYS_open_by_handle_at, AT_FDCWD, fh, O_RDONLY));
    report("acct", syscall(SYS_acct, NULL));
    report("syslog", syscall(SYS_syslog, 10 /* SYSLOG_ACTION_SIZE_BUFFER */, NULL, 0));
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    report("clock_settime", syscall(SYS_clock_settime, -1, &now));
    report("settimeofday", syscall(SYS_settimeofday, NULL, NULL));
    report("iopl", syscall(SYS_iopl, 0));
    report("personality_query", personality(0xffffffff));
    report("personality_linux32", personality(PER_LINUX32));
    report("personality_no_randomize", personality(ADDR_NO_RANDOMIZE));
    personality(PER_LINUX);
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    report("socket_inet", s);
    if (s >= 0) close(s);
    s = socket(40 /* AF_VSOCK */, SOCK_STREAM, 0);
    report("socket_vsock", s);
    if (s >= 0) close(s);
    report("chroot", chroot("/"));
    report("vhangup", syscall(SYS_vhangup));
    report("kcmp", syscall(SYS_kcmp, getpid(), getpid(), 0, 0, 0));
    report("lookup_dcookie", syscall(SYS_lookup_dcookie, 0, NULL, 0));
    report("quotactl", syscall(SYS_quotactl, 0, NULL, 0, NULL));
    report("name_to_handle_at", syscall(SYS_name_to_handle_at, AT_FDCWD, "/", NULL, NULL, 0));
}

/* How the step sees each path Docker masks or makes read-only. */
static void probe_path(const char *path) {
    char name[300];
    DIR *d = opendir(path);
    if (d) {
        int entries = 0;
        struct dirent *e;
        while ((e = readdir(d)) != NULL)
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) entries++;
        closedir(d);
        snprintf(name, sizeof name, "list %s", path);
        printf("%s: %s\n", name, entries ? "entries" : "empty");
    } else if (errno == ENOTDIR) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        snprintf(name, sizeof name, "read %s", path);
        if (fd < 0) {
            report(name, -1);
        } else {
            char buf[4096];
            ssize_t n = read(fd, buf, sizeof buf);
            close(fd);
            if (n < 0) report(name, -1);
            else printf("%s: %s\n", name, n ? "data" : "empty");
        }
    } else {
        snprintf(name, sizeof name, "list %s", path);
        report(name, -1);
    }
    struct statvfs sv;
    snprintf(name, sizeof name, "mount %s", path);
    if (statvfs(path, &sv) != 0) report(name, -1);
    else printf("%s: %s\n", name, (sv.f_flag & ST_RDONLY) ? "ro" : "rw");
}

static void probe_paths(void) {
    static const char *paths[] = {
        "/proc/acpi", "/proc/asound", "/proc/interrupts", "/proc/kcore", "/proc/keys",
        "/proc/latency_stats", "/proc/sched_debug", "/proc/scsi", "/proc/timer_list",
        "/proc/timer_stats", "/sys/devices/virtual/powercap", "/sys/firmware",
        "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
    };
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) probe_path(paths[i]);
    char path[128];
    for (int cpu = 0; cpu < 4096; cpu++) {
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d", cpu);
        if (access(path, F_OK) != 0) break;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/thermal_throttle", cpu);
        if (access(path, F_OK) == 0) probe_path(path);
    }
    int fd = open("/proc/sysrq-trigger", O_WRONLY | O_CLOEXEC);
    report("write /proc/sysrq-trigger", fd);
    if (fd >= 0) close(fd);
    fd = open("/proc/sys/kernel/hostname", O_WRONLY | O_CLOEXEC);
    report("write /proc/sys/kernel/hostname", fd);
    if (fd >= 0) close(fd);
}

/* The `Seccomp:` and `NoNewPrivs:` lines of /proc/self/status. */
static void probe_status(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "Seccomp:", 8) == 0 || strncmp(line, "NoNewPrivs:", 11) == 0) {
            char *colon = strchr(line, ':');
            *colon = 0;
            char *value = colon + 1;
            while (*value == ' ' || *value == '\t') value++;
            printf("status %s: %s", line, value);
        }
    }
    if (f) fclose(f);
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc > 1 && strcmp(argv[1], "euid") == 0) {
        printf("%d\n", (int)geteuid());
        return 0;
    }
    probe_status();
    probe_syscalls();
    probe_paths();
    return 0;
}
