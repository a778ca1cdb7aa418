// Host side (keeper). The program's terminal, served: a thread of the keeper reads what the
// program writes to its pty, keeps the screen model, and passes it on to the attached terminals
// (vos run / vos restore in the foreground, vos attach), whose keys it writes back. Nothing
// attached, the program's output still goes into the model (a program is never stopped for
// want of a reader, but for the pty's own buffer while a slow terminal catches up).
#pragma once

#include <sys/types.h>
#include <termios.h>

#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "base/result.h"
#include "base/unique_fd.h"
#include "console/screen_model.h"

namespace vos::console {

// What an image keeps of the terminal (image::ConsoleState holds it on disk).
struct ConsoleSnapshot {
  termios mode{};
  int rows = 0, cols = 0;
  pid_t foreground = 0;  // the terminal's foreground process group, as the namespace numbers it
  pid_t session = 0;     // the session it is the controlling terminal of (0: none)
  std::string input;     // typed, not read yet by the program
  std::string screen;    // ScreenModel::render()
};

struct AttachRequest {
  int rows = 0, cols = 0;  // the attaching terminal's size (0: keep the pty's)
  bool shared = false;     // watch along with the terminals attached now (else: take over)
  bool redraw = true;      // send the screen first (not for vos run's own start)
};

// Puts bytes back in the pty's input queue as typed but unread, without echo or signals (a
// restore, or a checkpoint that read them out). A line being edited comes back as typed.
Status put_back_input(int master, const std::string& slave_path, const std::string& input,
                      const termios& mode);

class Console {
 public:
  // `screen`: a restored screen (render() bytes), fed to the model before anything else. With
  // `keep_until_attach` (a new program: vos run attaches once it runs), what the program writes
  // before the first terminal attaches is kept for it (up to a few MiB, then it gets a redraw).
  Console(UniqueFd master, std::string slave_path, const std::string& screen,
          bool keep_until_attach = false);
  ~Console();
  Console(const Console&) = delete;
  Console& operator=(const Console&) = delete;

  const std::string& slave_path() const { return slave_path_; }
  int master() const { return master_.get(); }

  // The keeper's main thread hands over a control connection that asked to attach; the reply
  // line and the frames are this thread's.
  void attach(UniqueFd conn, const AttachRequest& req);
  // The first process ended (`all`: the last one did): the terminals get everything it wrote,
  // then an end frame. With `all`, waits (a little) for them to have it.
  void program_ended(bool all);

  // With the program stopped: everything it wrote is in the model, its unread input taken out
  // of the pty (and put back when `keep_running`, the program resuming).
  Result<ConsoleSnapshot> snapshot(bool keep_running);

 private:
  struct Client {
    UniqueFd fd;
    std::string in, out;
  };
  void run();
  void wake();
  void drain_master_locked();
  void catch_up_model_locked();
  void send_output_locked(std::string_view bytes);
  void flush_clients_locked();
  void handle_client_input_locked(Client& c);
  void write_keys_locked();
  void resize_locked(int rows, int cols);

  UniqueFd master_;
  std::string slave_path_;
  UniqueFd wake_;  // eventfd
  std::mutex mu_;
  ScreenModel model_;
  std::vector<std::unique_ptr<Client>> clients_;
  std::vector<std::pair<UniqueFd, AttachRequest>> arriving_;
  std::string to_program_;  // keys the pty could not take yet
  bool master_hung_ = false;
  bool keeping_ = false;   // see keep_until_attach
  std::string unmodeled_;  // read from the master, not fed to the model yet
  std::string kept_;
  int ended_ = 0;  // 1: the first process ended, 2: all
  bool ended_told_ = false;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace vos::console
