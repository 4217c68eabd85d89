// PID 1 of a twlab guest kernel (`twlab run --kernel …`): the initramfs's only program.
//
//   1. mounts /dev, /proc, /sys and loads the modules named in /modules.load, in that order
//      (9p over virtio and tun, taken from the kernel package itself);
//   2. mounts the host's root read-only over virtio-9p at /host, and the evidence share
//      read-write over it at the same path as on the host (twlab_out), so every path a lab
//      writes is the host's path; a tmpfs on /run (TMPDIR=/run/tmp); the guest's own /dev,
//      /proc and /sys;
//   3. starts `twlab_node twlab_main` chrooted into /host, in twlab_cwd;
//   4. reaps every process until that one ends, says how it ended on the console, powers off.
//
// Its settings arrive as kernel command-line words `twlab_*=…`, which the kernel hands to init
// as environment variables. It prints "twlab-init: …" lines; anything that fails says what and
// why, then powers off, so qemu always exits (the host names the console log in its error).
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void say(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "twlab-init: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\n");
  va_end(ap);
}

static void power_off(int status) {
  say("powering off (status %d)", status);
  sync();
  reboot(RB_POWER_OFF);
  for (;;) pause();
}

static void must_mount(const char *src, const char *target, const char *type, unsigned long flags, const char *data) {
  mkdir(target, 0755);
  if (mount(src, target, type, flags, data) != 0) {
    say("mount %s on %s (%s, %s) failed: %s", src, target, type, data ? data : "", strerror(errno));
    power_off(1);
  }
}

static const char *setting(const char *name) {
  const char *v = getenv(name);
  if (!v || !*v) {
    say("kernel command line lacks %s=", name);
    power_off(1);
  }
  return v;
}

static void load_modules(void) {
  FILE *list = fopen("/modules.load", "r");
  if (!list) {
    say("no /modules.load: %s", strerror(errno));
    power_off(1);
  }
  char line[256];
  while (fgets(line, sizeof line, list)) {
    line[strcspn(line, "\r\n")] = 0;
    if (!*line) continue;
    char file[300];
    snprintf(file, sizeof file, "/modules/%s", line);
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
      say("open %s: %s", file, strerror(errno));
      power_off(1);
    }
    if (syscall(SYS_finit_module, fd, "", 0) != 0 && errno != EEXIST) {
      say("load %s: %s", line, strerror(errno));
      power_off(1);
    }
    close(fd);
  }
  fclose(list);
}

int main(void) {
  mkdir("/dev", 0755);
  mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
  // the kernel opened /dev/console for us if the initramfs has it; make sure stdio goes there
  int con = open("/dev/console", O_RDWR);
  if (con >= 0) {
    dup2(con, 0);
    dup2(con, 1);
    dup2(con, 2);
    if (con > 2) close(con);
  }
  must_mount("proc", "/proc", "proc", 0, NULL);
  must_mount("sysfs", "/sys", "sysfs", 0, NULL);
  load_modules();

  const char *out = setting("twlab_out");
  const char *cwd = setting("twlab_cwd");
  const char *node = setting("twlab_node");
  const char *entry = setting("twlab_main");

  must_mount("twlabroot", "/host", "9p", MS_RDONLY, "trans=virtio,version=9p2000.L,cache=loose,msize=262144");
  char path[4096];
  snprintf(path, sizeof path, "/host%s", out);
  must_mount("twlabout", path, "9p", 0, "trans=virtio,version=9p2000.L,msize=262144");
  // the host's /tmp stays visible (read-only: a cwd or an evidence folder may live there);
  // the guest writes its temporary files under /run/tmp instead (TMPDIR)
  must_mount("tmpfs", "/host/run", "tmpfs", 0, "mode=0755");
  mkdir("/host/run/tmp", 01777);
  chmod("/host/run/tmp", 01777);
  must_mount("devtmpfs", "/host/dev", "devtmpfs", 0, NULL);
  must_mount("devpts", "/host/dev/pts", "devpts", 0, NULL);
  must_mount("proc", "/host/proc", "proc", 0, NULL);
  must_mount("sysfs", "/host/sys", "sysfs", 0, NULL);
  say("host root mounted; starting %s %s", node, entry);

  pid_t main_pid = fork();
  if (main_pid < 0) {
    say("fork: %s", strerror(errno));
    power_off(1);
  }
  if (main_pid == 0) {
    if (chroot("/host") != 0 || chdir(cwd) != 0) {
      say("chroot /host, chdir %s: %s", cwd, strerror(errno));
      _exit(127);
    }
    setenv("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", 1);
    setenv("HOME", "/root", 1);
    setenv("TMPDIR", "/run/tmp", 1);
    setenv("TWLAB_GUEST", "1", 1);
    execl(node, node, entry, (char *)NULL);
    say("exec %s: %s", node, strerror(errno));
    _exit(127);
  }
  // PID 1 adopts every orphan: reap them all until the main process ends
  int status = 0;
  for (;;) {
    pid_t p = wait(&status);
    if (p == main_pid) break;
    if (p < 0 && errno == ECHILD) break;
  }
  int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  say("main process ended: %s %d", WIFEXITED(status) ? "exit" : "signal", WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
  power_off(code);
  return 0;
}
