// A nats-server (Debian's package, /usr/sbin/nats-server) started by a test on a free loopback
// port, with JetStream in a temporary directory and, optionally, one user and password; stopped
// (and its directory removed) when the object goes. Tests that need it and find no nats-server
// skip (TEST_SKIP): tools/install-deps installs it, so CI always has one.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>

namespace test {

inline std::optional<std::string> nats_server_binary() {
  for (const char* p : {"/usr/sbin/nats-server", "/usr/bin/nats-server", "/usr/local/bin/nats-server"})
    if (::access(p, X_OK) == 0) return std::string(p);
  return std::nullopt;
}

inline int free_loopback_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  socklen_t len = sizeof addr;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error("cannot find a free loopback port");
  }
  ::close(fd);
  return ntohs(addr.sin_port);
}

inline bool port_accepts(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool ok = fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  if (fd >= 0) ::close(fd);
  return ok;
}

class NatsServer {
 public:
  struct Options {
    Options() = default;
    Options(std::string u, std::string p) : user(std::move(u)), password(std::move(p)) {}
    std::string user, password;  ///< both empty: no authorization
    std::string nkey;            ///< a user's public nkey (U...) instead of user and password
  };

  explicit NatsServer(const Options& options) {
    const auto bin = nats_server_binary();
    if (!bin) throw std::runtime_error("no nats-server installed");
    char tmpl[] = "/tmp/oneadapt-nats-XXXXXX";
    if (::mkdtemp(tmpl) == nullptr) throw std::runtime_error("mkdtemp failed");
    dir_ = tmpl;
    // A port found free can be taken before the server binds it: try a few.
    for (int attempt = 0; attempt < 5; ++attempt) {
      port_ = free_loopback_port();
      write_config(options);
      if (start(*bin)) return;
    }
    throw std::runtime_error("nats-server did not start; its log: " + log_tail());
  }
  ~NatsServer() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  NatsServer(const NatsServer&) = delete;
  NatsServer& operator=(const NatsServer&) = delete;

  int port() const { return port_; }
  std::string url() const { return "nats://127.0.0.1:" + std::to_string(port_); }
  std::string log_tail() const {
    std::ifstream in(dir_ / "server.log");
    std::stringstream ss;
    ss << in.rdbuf();
    const std::string s = ss.str();
    return s.size() > 2000 ? s.substr(s.size() - 2000) : s;
  }

  void stop() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGTERM);
    for (int i = 0; i < 100; ++i) {
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }

 private:
  void write_config(const Options& o) {
    std::ofstream cfg(dir_ / "server.conf");
    cfg << "listen: 127.0.0.1:" << port_ << "\n";
    cfg << "jetstream { store_dir: \"" << (dir_ / "js").string() << "\" }\n";
    if (!o.nkey.empty()) cfg << "authorization { users = [ { nkey: \"" << o.nkey << "\" } ] }\n";
    if (!o.user.empty())
      cfg << "authorization { users = [ { user: \"" << o.user << "\", password: \""
          << o.password << "\" } ] }\n";
  }

  bool start(const std::string& bin) {
    const std::string conf = (dir_ / "server.conf").string();
    const std::string log = (dir_ / "server.log").string();
    // The child must not flush the test's buffered output a second time: no stdio after fork.
    std::fflush(nullptr);
    pid_ = ::fork();
    if (pid_ < 0) throw std::runtime_error("fork failed");
    if (pid_ == 0) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0600);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      ::execl(bin.c_str(), bin.c_str(), "-c", conf.c_str(), static_cast<char*>(nullptr));
      std::_Exit(127);
    }
    for (int i = 0; i < 200; ++i) {  // up to 10 s
      if (::waitpid(pid_, nullptr, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      if (port_accepts(port_)) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    stop();
    return false;
  }

  std::filesystem::path dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace test
