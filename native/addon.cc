// twlab native addon: syscalls only — no parsing, no policy.
//
// Contract (../shared/DESIGN.md "Native addon contract"):
// - every syscall wrapper returns { ret, errno } with errno as its name ("EADDRINUSE") or null;
//   an errno is a result, never an exception. Bad argument types throw.
// - calls that can block (connect, accept, send, recv, close) run on a libuv worker and resolve
//   a Promise with { ret, errno, elapsedMs }: the event loop, where the userspace peer lives,
//   never blocks.
// - TUN: IFF_TUN | IFF_NO_PI, non-blocking; readiness through uv_poll, every queued frame read
//   per wake-up.
// - AF_PACKET: a packet socket bound to one interface (the lab's TUN, or a tap), reading every
//   frame that crosses it in either direction with the kernel's own timestamp (SO_TIMESTAMPNS,
//   the capture path tcpdump uses), and writing frames into it. Its own section below.
#include <napi.h>
#include <uv.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_packet.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <linux/if_tun.h>
#include <net/ethernet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <string>
#include <vector>

#ifndef IP_LOCAL_PORT_RANGE
#define IP_LOCAL_PORT_RANGE 51  // Linux 6.3, include/uapi/linux/in.h
#endif

namespace {

double NowMs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

double WallUs() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec / 1000);
}

Napi::Value ErrnoValue(Napi::Env env, int err) {
  if (err == 0) return env.Null();
  const char* name = strerrorname_np(err);
  if (name == nullptr) return Napi::String::New(env, "E" + std::to_string(err));
  return Napi::String::New(env, name);
}

Napi::Object Result(Napi::Env env, long ret, int err) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("ret", Napi::Number::New(env, static_cast<double>(ret)));
  o.Set("errno", ErrnoValue(env, ret < 0 ? err : 0));
  return o;
}

int IntArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsNumber()) {
    throw Napi::TypeError::New(info.Env(), std::string("argument ") + std::to_string(i) + " (" + what + ") must be a number");
  }
  return info[i].As<Napi::Number>().Int32Value();
}

Napi::Buffer<uint8_t> BufferArg(const Napi::CallbackInfo& info, size_t i, const char* what) {
  if (info.Length() <= i || !info[i].IsBuffer()) {
    throw Napi::TypeError::New(info.Env(), std::string("argument ") + std::to_string(i) + " (" + what + ") must be a Buffer");
  }
  return info[i].As<Napi::Buffer<uint8_t>>();
}

// A syscall run on a libuv worker thread. `work` runs off the loop and fills ret/err/data;
// the Promise resolves with { ret, errno, elapsedMs, startUs } (+ data / addr when present);
// startUs: when the worker began the call (CLOCK_REALTIME, µs), which a busy thread pool delays.
class SyscallWorker : public Napi::AsyncWorker {
 public:
  struct Out {
    long ret = 0;
    int err = 0;
    std::vector<uint8_t> data;
    bool hasData = false;
    std::vector<uint8_t> addr;
    bool hasAddr = false;
  };
  using Work = std::function<void(Out&)>;

  SyscallWorker(Napi::Env env, Work work)
      : Napi::AsyncWorker(env, "twlab:syscall"), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    startUs_ = WallUs();
    double t0 = NowMs();
    work_(out_);
    elapsedMs_ = NowMs() - t0;
  }

  void OnOK() override {
    Napi::Env env = Env();
    Napi::Object o = Result(env, out_.ret, out_.err);
    o.Set("elapsedMs", Napi::Number::New(env, elapsedMs_));
    o.Set("startUs", Napi::Number::New(env, startUs_));
    if (out_.hasData) o.Set("data", Napi::Buffer<uint8_t>::Copy(env, out_.data.data(), out_.data.size()));
    if (out_.hasAddr) o.Set("addr", Napi::Buffer<uint8_t>::Copy(env, out_.addr.data(), out_.addr.size()));
    deferred_.Resolve(o);
  }

  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  Work work_;
  Out out_;
  double elapsedMs_ = 0;
  double startUs_ = 0;
};

Napi::Value Queue(Napi::Env env, SyscallWorker::Work work) {
  auto* w = new SyscallWorker(env, std::move(work));
  Napi::Promise p = w->Promise();
  w->Queue();
  return p;
}

// Waits up to timeoutMs (-1: forever) for `events` on fd; returns false with err=ETIMEDOUT on timeout.
bool WaitFor(int fd, short events, int timeoutMs, SyscallWorker::Out& out) {
  if (timeoutMs < 0) return true;
  pollfd p{fd, events, 0};
  int r;
  do {
    r = poll(&p, 1, timeoutMs);
  } while (r < 0 && errno == EINTR);
  if (r < 0) {
    out.ret = -1;
    out.err = errno;
    return false;
  }
  if (r == 0) {
    out.ret = -1;
    out.err = ETIMEDOUT;
    return false;
  }
  return true;
}

// ---- synchronous syscalls (never block) ----

Napi::Value Socket(const Napi::CallbackInfo& info) {
  int fd = socket(IntArg(info, 0, "domain"), IntArg(info, 1, "type"), IntArg(info, 2, "protocol"));
  return Result(info.Env(), fd, errno);
}

Napi::Value Setsockopt(const Napi::CallbackInfo& info) {
  auto value = BufferArg(info, 3, "value");
  int r = setsockopt(IntArg(info, 0, "fd"), IntArg(info, 1, "level"), IntArg(info, 2, "optname"), value.Data(),
                     static_cast<socklen_t>(value.Length()));
  return Result(info.Env(), r, errno);
}

Napi::Value Getsockopt(const Napi::CallbackInfo& info) {
  int len = IntArg(info, 3, "length");
  if (len < 0 || len > 4096) throw Napi::RangeError::New(info.Env(), "getsockopt length must be 0..4096");
  std::vector<uint8_t> buf(len);
  socklen_t sl = static_cast<socklen_t>(len);
  int r = getsockopt(IntArg(info, 0, "fd"), IntArg(info, 1, "level"), IntArg(info, 2, "optname"), buf.data(), &sl);
  int err = errno;
  Napi::Object o = Result(info.Env(), r, err);
  o.Set("value", Napi::Buffer<uint8_t>::Copy(info.Env(), buf.data(), r < 0 ? 0 : sl));
  return o;
}

Napi::Value Bind(const Napi::CallbackInfo& info) {
  auto sa = BufferArg(info, 1, "sockaddr");
  int r = bind(IntArg(info, 0, "fd"), reinterpret_cast<const sockaddr*>(sa.Data()), static_cast<socklen_t>(sa.Length()));
  return Result(info.Env(), r, errno);
}

Napi::Value Listen(const Napi::CallbackInfo& info) {
  int r = listen(IntArg(info, 0, "fd"), IntArg(info, 1, "backlog"));
  return Result(info.Env(), r, errno);
}

Napi::Value Shutdown(const Napi::CallbackInfo& info) {
  int r = shutdown(IntArg(info, 0, "fd"), IntArg(info, 1, "how"));
  return Result(info.Env(), r, errno);
}

Napi::Value NameCall(const Napi::CallbackInfo& info, bool peer) {
  sockaddr_storage ss{};
  socklen_t sl = sizeof(ss);
  int fd = IntArg(info, 0, "fd");
  int r = peer ? getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &sl) : getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &sl);
  int err = errno;
  Napi::Object o = Result(info.Env(), r, err);
  o.Set("addr", Napi::Buffer<uint8_t>::Copy(info.Env(), reinterpret_cast<uint8_t*>(&ss), r < 0 ? 0 : sl));
  return o;
}
Napi::Value Getsockname(const Napi::CallbackInfo& info) { return NameCall(info, false); }
Napi::Value Getpeername(const Napi::CallbackInfo& info) { return NameCall(info, true); }

// Close that cannot block: for sockets the caller knows have no SO_LINGER {1,N} and no queue.
Napi::Value CloseNow(const Napi::CallbackInfo& info) {
  int r = close(IntArg(info, 0, "fd"));
  return Result(info.Env(), r, errno);
}

Napi::Value SetNonBlocking(const Napi::CallbackInfo& info) {
  int fd = IntArg(info, 0, "fd");
  bool on = info.Length() > 1 && info[1].ToBoolean().Value();
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0) return Result(info.Env(), flags, errno);
  int r = fcntl(fd, F_SETFL, on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK));
  return Result(info.Env(), r, errno);
}

// Non-blocking send (MSG_DONTWAIT): used to fill a send buffer without a worker round trip.
Napi::Value SendNow(const Napi::CallbackInfo& info) {
  auto data = BufferArg(info, 1, "data");
  ssize_t r = send(IntArg(info, 0, "fd"), data.Data(), data.Length(), IntArg(info, 2, "flags") | MSG_DONTWAIT);
  return Result(info.Env(), r, errno);
}

// ---- potentially blocking syscalls: on a worker ----

Napi::Value Connect(const Napi::CallbackInfo& info) {
  int fd = IntArg(info, 0, "fd");
  auto sa = BufferArg(info, 1, "sockaddr");
  std::vector<uint8_t> addr(sa.Data(), sa.Data() + sa.Length());
  return Queue(info.Env(), [fd, addr](SyscallWorker::Out& out) {
    out.ret = connect(fd, reinterpret_cast<const sockaddr*>(addr.data()), static_cast<socklen_t>(addr.size()));
    out.err = errno;
  });
}

Napi::Value Accept(const Napi::CallbackInfo& info) {
  int fd = IntArg(info, 0, "fd");
  int timeoutMs = IntArg(info, 1, "timeoutMs");
  return Queue(info.Env(), [fd, timeoutMs](SyscallWorker::Out& out) {
    out.hasAddr = true;
    if (!WaitFor(fd, POLLIN, timeoutMs, out)) return;
    sockaddr_storage ss{};
    socklen_t sl = sizeof(ss);
    out.ret = accept4(fd, reinterpret_cast<sockaddr*>(&ss), &sl, SOCK_CLOEXEC);
    out.err = errno;
    if (out.ret >= 0) out.addr.assign(reinterpret_cast<uint8_t*>(&ss), reinterpret_cast<uint8_t*>(&ss) + sl);
  });
}

Napi::Value Send(const Napi::CallbackInfo& info) {
  int fd = IntArg(info, 0, "fd");
  auto data = BufferArg(info, 1, "data");
  int flags = IntArg(info, 2, "flags");
  std::vector<uint8_t> bytes(data.Data(), data.Data() + data.Length());
  return Queue(info.Env(), [fd, bytes, flags](SyscallWorker::Out& out) {
    out.ret = send(fd, bytes.data(), bytes.size(), flags | MSG_NOSIGNAL);
    out.err = errno;
  });
}

Napi::Value Recv(const Napi::CallbackInfo& info) {
  int fd = IntArg(info, 0, "fd");
  int maxLen = IntArg(info, 1, "maxLength");
  int flags = IntArg(info, 2, "flags");
  int timeoutMs = IntArg(info, 3, "timeoutMs");
  if (maxLen < 0 || maxLen > (64 << 20)) throw Napi::RangeError::New(info.Env(), "recv maxLength must be 0..64 MiB");
  return Queue(info.Env(), [fd, maxLen, flags, timeoutMs](SyscallWorker::Out& out) {
    out.hasData = true;
    if (!WaitFor(fd, POLLIN, timeoutMs, out)) return;
    out.data.resize(maxLen);
    out.ret = recv(fd, out.data.data(), maxLen, flags);
    out.err = errno;
    out.data.resize(out.ret > 0 ? out.ret : 0);
  });
}

Napi::Value Close(const Napi::CallbackInfo& info) {
  int fd = IntArg(info, 0, "fd");
  return Queue(info.Env(), [fd](SyscallWorker::Out& out) {
    out.ret = close(fd);
    out.err = errno;
  });
}

// ---- TUN ----

Napi::Value TunOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "tunOpen(name: string)");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  if (name.size() >= IFNAMSIZ) throw Napi::RangeError::New(env, "interface name too long");
  int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    Napi::Object o = Result(env, -1, errno);
    o.Set("name", env.Null());
    return o;
  }
  ifreq ifr{};
  ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
  strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
    int err = errno;
    close(fd);
    Napi::Object o = Result(env, -1, err);
    o.Set("name", env.Null());
    return o;
  }
  Napi::Object o = Result(env, fd, 0);
  o.Set("name", Napi::String::New(env, ifr.ifr_name));
  return o;
}

Napi::Value TunWrite(const Napi::CallbackInfo& info) {
  auto frame = BufferArg(info, 1, "frame");
  ssize_t r = write(IntArg(info, 0, "fd"), frame.Data(), frame.Length());
  return Result(info.Env(), r, errno);
}

// Readiness of a non-blocking fd through uv_poll: on each wake-up, every queued frame is read
// and handed to JS in one call: callback(frames: Buffer[], timesUs: number[]).
// A readable fd watched on the loop for a JS object (TunPoller, PacketPoller): the poll starts with
// the object, which keeps itself alive while it polls, and ends with stop() or with the object.
// T::Readable() reads what is queued and calls callback_.
template <class T>
class FdPoller : public Napi::ObjectWrap<T> {
 public:
  explicit FdPoller(const Napi::CallbackInfo& info) : Napi::ObjectWrap<T>(info) {}
  ~FdPoller() override { StopPolling(); }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    if (handle_ != nullptr) {
      StopPolling();
      this->Unref();
    }
    return info.Env().Undefined();
  }

 protected:
  // once fd_ and callback_ are set; `what` names the fd in an error
  void StartPolling(Napi::Env env, const char* resource, const char* what) {
    context_ = std::make_unique<Napi::AsyncContext>(env, resource);
    uv_loop_t* loop = nullptr;
    napi_get_uv_event_loop(env, &loop);
    handle_ = new uv_poll_t;
    handle_->data = static_cast<T*>(this);
    int r = uv_poll_init(loop, handle_, fd_);
    if (r == 0) r = uv_poll_start(handle_, UV_READABLE, OnPoll);
    if (r != 0) {
      delete handle_;
      handle_ = nullptr;
      throw Napi::Error::New(env, std::string("uv_poll on ") + what + ": " + uv_strerror(r));
    }
    this->Ref();  // stay alive while polling
  }

  void StopPolling() {
    if (handle_ == nullptr) return;
    uv_poll_stop(handle_);
    handle_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(handle_), [](uv_handle_t* h) { delete reinterpret_cast<uv_poll_t*>(h); });
    handle_ = nullptr;
  }

  int fd_ = -1;
  uv_poll_t* handle_ = nullptr;
  Napi::FunctionReference callback_;
  std::unique_ptr<Napi::AsyncContext> context_;

 private:
  static void OnPoll(uv_poll_t* h, int status, int) {
    auto* self = static_cast<T*>(h->data);
    if (status < 0 || self == nullptr) return;
    self->Readable();
  }
};

class TunPoller : public FdPoller<TunPoller> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "TunPoller", {InstanceMethod("stop", &TunPoller::Stop), InstanceMethod("drain", &TunPoller::DrainNow)});
  }

  explicit TunPoller(const Napi::CallbackInfo& info) : FdPoller<TunPoller>(info) {
    Napi::Env env = info.Env();
    fd_ = IntArg(info, 0, "fd");
    if (info.Length() < 2 || !info[1].IsFunction()) throw Napi::TypeError::New(env, "TunPoller(fd, callback)");
    callback_ = Napi::Persistent(info[1].As<Napi::Function>());
    StartPolling(env, "twlab:tun", "tun fd");
  }

  void Readable() { Drain(); }

 private:

  void Drain(bool nested = false) {
    Napi::Env env = callback_.Env();
    Napi::HandleScope scope(env);
    Napi::Array frames = Napi::Array::New(env);
    Napi::Array times = Napi::Array::New(env);
    uint32_t n = 0;
    uint8_t buf[65536];
    int lastErr = 0;
    for (;;) {
      ssize_t r = read(fd_, buf, sizeof(buf));
      if (r < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN) lastErr = errno;
        break;
      }
      if (r == 0) break;
      frames.Set(n, Napi::Buffer<uint8_t>::Copy(env, buf, r));
      times.Set(n, Napi::Number::New(env, WallUs()));
      n++;
    }
    if (n == 0 && lastErr == 0) return;
    if (nested) callback_.Call(env.Global(), {frames, times, ErrnoValue(env, lastErr)});
    else callback_.MakeCallback(env.Global(), {frames, times, ErrnoValue(env, lastErr)}, *context_);
  }

  // drain(): reads what is queued now, from JS (the callback runs before drain returns)
  Napi::Value DrainNow(const Napi::CallbackInfo& info) {
    if (handle_ != nullptr) Drain(true);
    return info.Env().Undefined();
  }
};

// ---- AF_PACKET: frames as they cross an interface, with the kernel's timestamps ----
//
// packetOpen(ifname, raw, ignoreOutgoing) → { ret: fd, errno, ifindex, step }: socket(AF_PACKET,
// SOCK_DGRAM or SOCK_RAW, ETH_P_ALL), non-blocking, bound to the interface, with SO_TIMESTAMPNS (each frame
// stamped by the kernel on CLOCK_REALTIME where it crosses: dev_queue_xmit_nit on transmit,
// __netif_receive_skb on receive) and PACKET_AUXDATA (a frame's length before a short read cut
// it). `step` names the call that failed. On a device without a link-layer header (TUN) both
// types read the IP packet itself; on a tap, SOCK_RAW keeps the Ethernet header. With
// ignoreOutgoing (PACKET_IGNORE_OUTGOING) frames this host sends on the interface are not read
// back: the wire of another OS's stack behind a tap (src/host/taplink.ts), read with TunPoller.
// packetSend(fd, frame) → { ret, errno }: one frame into the interface (send, MSG_DONTWAIT).
// packetStats(fd) → { ret, errno, packets, drops }: PACKET_STATISTICS (counters reset on read).
// PacketPoller(fd, snaplen, callback): like TunPoller; each wake-up reads every queued frame,
// at most `snaplen` bytes of each, and calls callback(frames, timesUs, lengths, outgoing, errno)
// — timesUs: the kernel's stamps (µs, CLOCK_REALTIME, with the ns as a fraction); lengths: each
// frame's length on the wire; outgoing: sent by this host (PACKET_OUTGOING) rather than received.
// drain() does the same at once, synchronously (what crossed before now is all in the queue).

Napi::Value PacketOpen(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsString()) throw Napi::TypeError::New(env, "packetOpen(ifname: string, raw?: boolean, ignoreOutgoing?: boolean)");
  std::string name = info[0].As<Napi::String>().Utf8Value();
  if (name.size() >= IFNAMSIZ) throw Napi::RangeError::New(env, "interface name too long");
  bool raw = info.Length() > 1 && info[1].ToBoolean().Value();
  bool ignoreOutgoing = info.Length() > 2 && info[2].ToBoolean().Value();
  auto fail = [&](const char* step, int err, int fd) {
    if (fd >= 0) close(fd);
    Napi::Object o = Result(env, -1, err);
    o.Set("ifindex", env.Null());
    o.Set("step", Napi::String::New(env, step));
    return o;
  };
  int fd = socket(AF_PACKET, (raw ? SOCK_RAW : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, htons(ETH_P_ALL));
  if (fd < 0) return fail("socket", errno, -1);
  ifreq ifr{};
  strncpy(ifr.ifr_name, name.c_str(), IFNAMSIZ - 1);
  if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0) return fail("ioctl(SIOCGIFINDEX)", errno, fd);
  int ifindex = ifr.ifr_ifindex;
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = ifindex;
  if (bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof(sll)) < 0) return fail("bind", errno, fd);
  int on = 1;
  if (setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof(on)) < 0) return fail("setsockopt(SO_TIMESTAMPNS)", errno, fd);
  if (setsockopt(fd, SOL_PACKET, PACKET_AUXDATA, &on, sizeof(on)) < 0) return fail("setsockopt(PACKET_AUXDATA)", errno, fd);
  if (ignoreOutgoing && setsockopt(fd, SOL_PACKET, PACKET_IGNORE_OUTGOING, &on, sizeof(on)) < 0) return fail("setsockopt(PACKET_IGNORE_OUTGOING)", errno, fd);
  Napi::Object o = Result(env, fd, 0);
  o.Set("ifindex", Napi::Number::New(env, ifindex));
  o.Set("step", env.Null());
  return o;
}

Napi::Value PacketSend(const Napi::CallbackInfo& info) {
  auto frame = BufferArg(info, 1, "frame");
  ssize_t r = send(IntArg(info, 0, "fd"), frame.Data(), frame.Length(), MSG_DONTWAIT);
  return Result(info.Env(), r, errno);
}

Napi::Value PacketStats(const Napi::CallbackInfo& info) {
  tpacket_stats st{};
  socklen_t sl = sizeof(st);
  int r = getsockopt(IntArg(info, 0, "fd"), SOL_PACKET, PACKET_STATISTICS, &st, &sl);
  int err = errno;
  Napi::Object o = Result(info.Env(), r, err);
  o.Set("packets", Napi::Number::New(info.Env(), r < 0 ? 0 : st.tp_packets));
  o.Set("drops", Napi::Number::New(info.Env(), r < 0 ? 0 : st.tp_drops));
  return o;
}

class PacketPoller : public FdPoller<PacketPoller> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "PacketPoller",
                       {InstanceMethod("stop", &PacketPoller::Stop), InstanceMethod("drain", &PacketPoller::DrainNow),
                        InstanceMethod("setSnaplen", &PacketPoller::SetSnaplen)});
  }

  explicit PacketPoller(const Napi::CallbackInfo& info) : FdPoller<PacketPoller>(info) {
    Napi::Env env = info.Env();
    fd_ = IntArg(info, 0, "fd");
    snaplen_ = IntArg(info, 1, "snaplen");
    if (snaplen_ < 1 || snaplen_ > 262144) throw Napi::RangeError::New(env, "snaplen must be 1..262144");
    if (info.Length() < 3 || !info[2].IsFunction()) throw Napi::TypeError::New(env, "PacketPoller(fd, snaplen, callback)");
    callback_ = Napi::Persistent(info[2].As<Napi::Function>());
    StartPolling(env, "twlab:packet", "packet socket");
  }

  void Readable() {
    Napi::Env env = callback_.Env();
    Napi::HandleScope scope(env);
    Napi::Value args[5];
    if (!Read(env, args)) return;
    callback_.MakeCallback(env.Global(), {args[0], args[1], args[2], args[3], args[4]}, *context_);
  }

 private:

  // Reads every queued frame (at most 4096 per call, so the loop keeps turning); false when
  // there was nothing and no error.
  bool Read(Napi::Env env, Napi::Value* out) {
    Napi::Array frames = Napi::Array::New(env);
    Napi::Array times = Napi::Array::New(env);
    Napi::Array lengths = Napi::Array::New(env);
    Napi::Array outgoing = Napi::Array::New(env);
    std::vector<uint8_t> buf(static_cast<size_t>(snaplen_));
    alignas(cmsghdr) uint8_t control[256];
    uint32_t n = 0;
    int lastErr = 0;
    while (n < 4096) {
      sockaddr_ll from{};
      iovec iov{buf.data(), buf.size()};
      msghdr msg{};
      msg.msg_name = &from;
      msg.msg_namelen = sizeof(from);
      msg.msg_iov = &iov;
      msg.msg_iovlen = 1;
      msg.msg_control = control;
      msg.msg_controllen = sizeof(control);
      ssize_t r = recvmsg(fd_, &msg, MSG_DONTWAIT | MSG_TRUNC);
      if (r < 0) {
        if (errno == EINTR) continue;
        if (errno != EAGAIN) lastErr = errno;
        break;
      }
      double us = -1;
      double wire = static_cast<double>(r);
      for (cmsghdr* c = CMSG_FIRSTHDR(&msg); c != nullptr; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
          timespec ts;
          memcpy(&ts, CMSG_DATA(c), sizeof(ts));
          us = static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3;
        } else if (c->cmsg_level == SOL_PACKET && c->cmsg_type == PACKET_AUXDATA) {
          tpacket_auxdata aux;
          memcpy(&aux, CMSG_DATA(c), sizeof(aux));
          wire = static_cast<double>(aux.tp_len);
        }
      }
      if (us < 0) us = WallUs();  // no stamp (should not happen with SO_TIMESTAMPNS): when read
      size_t kept = std::min(static_cast<size_t>(r), buf.size());
      frames.Set(n, Napi::Buffer<uint8_t>::Copy(env, buf.data(), kept));
      times.Set(n, Napi::Number::New(env, us));
      lengths.Set(n, Napi::Number::New(env, wire));
      outgoing.Set(n, Napi::Boolean::New(env, from.sll_pkttype == PACKET_OUTGOING));
      n++;
    }
    if (n == 0 && lastErr == 0) return false;
    out[0] = frames;
    out[1] = times;
    out[2] = lengths;
    out[3] = outgoing;
    out[4] = ErrnoValue(env, lastErr);
    return true;
  }

  // Synchronous: every frame queued now, handed to the callback before drain() returns (loops
  // past the 4096-frame batch until the queue is empty). Returns how many frames it read.
  Napi::Value DrainNow(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    double total = 0;
    for (;;) {
      Napi::Value args[5];
      if (!Read(env, args)) break;
      uint32_t n = args[0].As<Napi::Array>().Length();
      total += n;
      callback_.Call(env.Global(), {args[0], args[1], args[2], args[3], args[4]});
      if (n < 4096) break;
    }
    return Napi::Number::New(env, total);
  }

  Napi::Value SetSnaplen(const Napi::CallbackInfo& info) {
    int n = IntArg(info, 0, "snaplen");
    if (n < 1 || n > 262144) throw Napi::RangeError::New(info.Env(), "snaplen must be 1..262144");
    snaplen_ = n;
    return info.Env().Undefined();
  }

  int snaplen_ = 65536;
};

// ---- the kernel's socket for one four-tuple (NETLINK_SOCK_DIAG) ----
//
// diagLookup(local, remote) → { ret, errno, state, timer, expiresMs, retrans, rqueue, wqueue, uid,
// inode, remotePort }: an exact inet_diag request (not a dump), which the kernel answers with one
// hash lookup — established, TIME_WAIT and request sockets, and, when the four-tuple has none, the
// listener a SYN to it would reach (remotePort 0 then). `local`, `remote`: sockaddr_in/_in6 bytes,
// one family. ENOENT: no socket at all. /proc/net/tcp instead walks every bucket of the
// established hash (262144 here), whatever the namespace holds: milliseconds per read.
Napi::Value DiagLookup(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto local = BufferArg(info, 0, "local sockaddr");
  auto remote = BufferArg(info, 1, "remote sockaddr");
  if (local.Length() < sizeof(sockaddr_in) || remote.Length() < sizeof(sockaddr_in)) throw Napi::RangeError::New(env, "diagLookup takes two sockaddrs");
  sa_family_t family = reinterpret_cast<const sockaddr*>(local.Data())->sa_family;
  struct {
    nlmsghdr nlh;
    inet_diag_req_v2 req;
  } msg{};
  msg.nlh.nlmsg_len = sizeof(msg);
  msg.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  msg.nlh.nlmsg_flags = NLM_F_REQUEST;
  msg.nlh.nlmsg_seq = 1;
  msg.req.sdiag_family = family;
  msg.req.sdiag_protocol = IPPROTO_TCP;
  msg.req.idiag_states = ~0U;
  msg.req.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
  msg.req.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
  if (family == AF_INET) {
    auto* l = reinterpret_cast<const sockaddr_in*>(local.Data());
    auto* r = reinterpret_cast<const sockaddr_in*>(remote.Data());
    msg.req.id.idiag_sport = l->sin_port;
    msg.req.id.idiag_dport = r->sin_port;
    memcpy(msg.req.id.idiag_src, &l->sin_addr, 4);
    memcpy(msg.req.id.idiag_dst, &r->sin_addr, 4);
  } else if (family == AF_INET6 && local.Length() >= sizeof(sockaddr_in6) && remote.Length() >= sizeof(sockaddr_in6)) {
    auto* l = reinterpret_cast<const sockaddr_in6*>(local.Data());
    auto* r = reinterpret_cast<const sockaddr_in6*>(remote.Data());
    msg.req.id.idiag_sport = l->sin6_port;
    msg.req.id.idiag_dport = r->sin6_port;
    memcpy(msg.req.id.idiag_src, &l->sin6_addr, 16);
    memcpy(msg.req.id.idiag_dst, &r->sin6_addr, 16);
  } else {
    throw Napi::TypeError::New(env, "diagLookup: sockaddr_in or sockaddr_in6, the same family twice");
  }
  auto result = [&](long ret, int err) {
    Napi::Object o = Result(env, ret, err);
    return o;
  };
  int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0) return result(-1, errno);
  sockaddr_nl kernel{};
  kernel.nl_family = AF_NETLINK;
  if (sendto(fd, &msg, sizeof(msg), 0, reinterpret_cast<sockaddr*>(&kernel), sizeof(kernel)) < 0) {
    int err = errno;
    close(fd);
    return result(-1, err);
  }
  // the kernel answers inside sendto(): the reply is queued before it returns
  alignas(nlmsghdr) uint8_t buf[8192];
  ssize_t n;
  do {
    n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
  } while (n < 0 && errno == EINTR);
  int err = errno;
  close(fd);
  if (n < 0) return result(-1, err);
  auto* h = reinterpret_cast<nlmsghdr*>(buf);
  if (!NLMSG_OK(h, static_cast<unsigned>(n))) return result(-1, EPROTO);
  if (h->nlmsg_type == NLMSG_ERROR) {
    auto* e = reinterpret_cast<nlmsgerr*>(NLMSG_DATA(h));
    return result(-1, e->error < 0 ? -e->error : EPROTO);
  }
  if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY || h->nlmsg_len < NLMSG_LENGTH(sizeof(inet_diag_msg))) return result(-1, EPROTO);
  auto* d = reinterpret_cast<inet_diag_msg*>(NLMSG_DATA(h));
  Napi::Object o = result(0, 0);
  o.Set("state", Napi::Number::New(env, d->idiag_state));
  o.Set("timer", Napi::Number::New(env, d->idiag_timer));
  o.Set("expiresMs", Napi::Number::New(env, d->idiag_expires));
  o.Set("retrans", Napi::Number::New(env, d->idiag_retrans));
  o.Set("rqueue", Napi::Number::New(env, d->idiag_rqueue));
  o.Set("wqueue", Napi::Number::New(env, d->idiag_wqueue));
  o.Set("uid", Napi::Number::New(env, d->idiag_uid));
  o.Set("inode", Napi::Number::New(env, d->idiag_inode));
  o.Set("remotePort", Napi::Number::New(env, ntohs(d->id.idiag_dport)));
  return o;
}

// ---- clock ----

// CLOCK_REALTIME in µs (with the ns as a fraction): the clock the kernel stamps captured frames
// with, so a lab's syscalls, socket-table samples and frames share one clock.
Napi::Value RealtimeUs(const Napi::CallbackInfo& info) {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return Napi::Number::New(info.Env(), static_cast<double>(ts.tv_sec) * 1e6 + static_cast<double>(ts.tv_nsec) / 1e3);
}

// ---- evidence folders: an atomic swap (src/lab/evidence.ts) ----
// renameat2(RENAME_EXCHANGE) exchanges two paths in one step: a lab's folder is at every instant
// either its old evidence or its new, whenever the process dies. Not every filesystem has it
// (9p in a guest, NFS): the errno says so and the caller falls back.
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE (1 << 1)  // include/uapi/linux/fs.h
#endif

Napi::Value RenameExchange(const Napi::CallbackInfo& info) {
  if (info.Length() < 2 || !info[0].IsString() || !info[1].IsString()) {
    throw Napi::TypeError::New(info.Env(), "renameExchange(a, b) takes two paths");
  }
  const std::string a = info[0].As<Napi::String>().Utf8Value();
  const std::string b = info[1].As<Napi::String>().Utf8Value();
  long r = syscall(SYS_renameat2, AT_FDCWD, a.c_str(), AT_FDCWD, b.c_str(), RENAME_EXCHANGE);
  return Result(info.Env(), r, errno);
}

// ---- pipes (the channel to another OS's stack's helper) ----

// pipe2(O_CLOEXEC): { ret, errno, readFd, writeFd }, both blocking.
Napi::Value Pipe(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) < 0) return Result(env, -1, errno);
  Napi::Object o = Result(env, 0, 0);
  o.Set("readFd", Napi::Number::New(env, fds[0]));
  o.Set("writeFd", Napi::Number::New(env, fds[1]));
  return o;
}

Napi::Object Constants(Napi::Env env) {
  Napi::Object c = Napi::Object::New(env);
#define C(name) c.Set(#name, Napi::Number::New(env, name))
  C(AF_INET); C(AF_INET6); C(SOCK_STREAM); C(SOCK_DGRAM); C(SOCK_NONBLOCK); C(SOCK_CLOEXEC);
  C(IPPROTO_TCP); C(IPPROTO_UDP); C(IPPROTO_IP); C(IPPROTO_IPV6);
  C(SOL_SOCKET); C(SO_REUSEADDR); C(SO_REUSEPORT); C(SO_LINGER); C(SO_RCVBUF); C(SO_SNDBUF);
  C(SO_ERROR); C(SO_TYPE); C(SO_KEEPALIVE); C(SO_BINDTODEVICE);
  C(IPV6_V6ONLY); C(IPV6_JOIN_GROUP);
  C(IP_ADD_MEMBERSHIP); C(IP_LOCAL_PORT_RANGE); C(IP_TTL); C(IP_MULTICAST_LOOP);
  C(TCP_NODELAY); C(TCP_INFO); C(TCP_MAXSEG);
  C(SHUT_RD); C(SHUT_WR); C(SHUT_RDWR);
  C(MSG_DONTWAIT); C(MSG_PEEK); C(MSG_NOSIGNAL);
  C(EAGAIN); C(EINPROGRESS);
  C(SO_RCVBUFFORCE);
#undef C
  c.Set("sizeofTcpInfo", Napi::Number::New(env, sizeof(tcp_info)));
  return c;
}

// Moves CLOCK_REALTIME by deltaMs (clock_settime). Only a twlab guest calls it (src/host/clock.ts
// guestRealtime): the kernel's ISN clock follows the realtime clock (net/core/secure_seq.c).
Napi::Value ShiftRealtime(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(info.Env(), "deltaMs must be a number");
  const int64_t delta = static_cast<int64_t>(info[0].As<Napi::Number>().DoubleValue() * 1e6);
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  const int64_t ns = static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec + delta;
  ts.tv_sec = static_cast<time_t>(ns / 1000000000);
  ts.tv_nsec = static_cast<long>(ns % 1000000000);
  const int r = clock_settime(CLOCK_REALTIME, &ts);
  return Result(info.Env(), r, errno);
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("constants", Constants(env));
  exports.Set("socket", Napi::Function::New(env, Socket));
  exports.Set("setsockopt", Napi::Function::New(env, Setsockopt));
  exports.Set("getsockopt", Napi::Function::New(env, Getsockopt));
  exports.Set("bind", Napi::Function::New(env, Bind));
  exports.Set("listen", Napi::Function::New(env, Listen));
  exports.Set("shutdown", Napi::Function::New(env, Shutdown));
  exports.Set("getsockname", Napi::Function::New(env, Getsockname));
  exports.Set("getpeername", Napi::Function::New(env, Getpeername));
  exports.Set("closeNow", Napi::Function::New(env, CloseNow));
  exports.Set("setNonBlocking", Napi::Function::New(env, SetNonBlocking));
  exports.Set("sendNow", Napi::Function::New(env, SendNow));
  exports.Set("connect", Napi::Function::New(env, Connect));
  exports.Set("accept", Napi::Function::New(env, Accept));
  exports.Set("send", Napi::Function::New(env, Send));
  exports.Set("recv", Napi::Function::New(env, Recv));
  exports.Set("close", Napi::Function::New(env, Close));
  exports.Set("tunOpen", Napi::Function::New(env, TunOpen));
  exports.Set("tunWrite", Napi::Function::New(env, TunWrite));
  exports.Set("shiftRealtime", Napi::Function::New(env, ShiftRealtime));
  exports.Set("TunPoller", TunPoller::Init(env));
  exports.Set("packetOpen", Napi::Function::New(env, PacketOpen));
  exports.Set("packetSend", Napi::Function::New(env, PacketSend));
  exports.Set("packetStats", Napi::Function::New(env, PacketStats));
  exports.Set("PacketPoller", PacketPoller::Init(env));
  exports.Set("realtimeUs", Napi::Function::New(env, RealtimeUs));
  exports.Set("diagLookup", Napi::Function::New(env, DiagLookup));
  exports.Set("renameExchange", Napi::Function::New(env, RenameExchange));
  exports.Set("pipe", Napi::Function::New(env, Pipe));
  return exports;
}

}  // namespace

NODE_API_MODULE(twlab, Init)
