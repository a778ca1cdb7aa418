// Host side (CLI): `vos` command line.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <array>
#include <string_view>

#include "cli/commands.h"

namespace {

constexpr std::array<std::string_view, 8> kSubcommands = {
    "run", "checkpoint", "restore", "ps", "inspect", "merge", "logs", "attach"};

// Building every subcommand's options costs CLI11 about 0.1 ms, which each `vos run` would pay
// before its program starts. When the first argument names a subcommand only that one is built:
// it parses, helps and complains the same. Anything else (--help, --version, a typo) gets all.
bool builds(int argc, char** argv, std::string_view subcommand) {
  if (argc < 2 ||
      std::find(kSubcommands.begin(), kSubcommands.end(), argv[1]) == kSubcommands.end()) {
    return true;
  }
  return argv[1] == subcommand;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "vos: checkpoint, restore and move unmodified running programs.\n"
      "Start a program under vos, checkpoint it to an image, kill it, restore it later."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "vos 0.1.0");

  vos::cli::RunArgs run;
  CLI::App* run_cmd = nullptr;
  if (builds(argc, argv, "run")) {
    run_cmd = app.add_subcommand("run", "Start PROGRAM under vos (it can then be checkpointed)");
    run_cmd->add_option("--name", run.name, "Name to refer to the program by (default: PROGRAM-N)");
    run_cmd->add_flag(
        "--detach,-d", run.detach,
        "Return once the program runs, with nobody attached. Started from a terminal, it still "
        "has its own terminal (vos attach NAME shows it); its stdout and stderr, if they are a "
        "pipe (or a terminal, with --no-pty), go to a log instead (vos logs NAME); a pipe or "
        "file on stdin stays the program's");
    run_cmd->add_flag(
        "--no-pty", run.no_pty,
        "Started from a terminal, the program gets a pseudo-terminal of vos's, which this "
        "terminal shows (Ctrl-\\ then d detaches; Ctrl-\\ twice sends Ctrl-\\): it can be "
        "detached, attached elsewhere and checkpointed with its screen. With --no-pty it "
        "uses this terminal itself, as without vos (it then cannot be detached)");
    run_cmd->add_flag("--json", run.json,
                      "With --detach: print {name, pid, start_ms, log} as JSON; in the foreground, "
                      "{name, pid, ms} on stderr once the program runs");
    run_cmd->add_option("program", run.argv, "PROGRAM [ARGS...] (put -- before it)")->required();
    run_cmd->footer(
        "Exit status in the foreground: the program's own (or death by the same signal) once its "
        "first process ends; processes it leaves running (daemons) stay under vos until they end "
        "(vos ps). 75 if it was checkpointed with vos checkpoint --kill (the image is named on "
        "stderr; continue with vos restore IMAGE); 127 if it cannot be run; 1 if vos failed.");
    run_cmd->prefix_command();
  }

  vos::cli::CheckpointArgs ck;
  CLI::App* ck_cmd = nullptr;
  if (builds(argc, argv, "checkpoint")) {
    ck_cmd = app.add_subcommand(
        "checkpoint",
        "Write an image of a running program (Ctrl-C calls it off: no image is left and the "
        "program runs on as it was)");
    ck_cmd->add_option("target", ck.target, "Name or host pid of the program (see vos ps)")
        ->required();
    ck_cmd->add_option("--dir", ck.dir, "Directory for the image (default: current directory)");
    ck_cmd->add_flag("--kill", ck.kill,
                     "End the program once the image is on disk; it never runs past the image");
    ck_cmd->add_flag("--incremental,-i", ck.incremental,
                     "Store only the pages written since this program's last checkpoint; the rest "
                     "is read from that image (and its parents) on restore. The first one is full "
                     "and starts tracking writes");
    ck_cmd->add_flag(
        "--no-precopy", ck.no_precopy,
        "Stop the program for a copy-on-write snapshot instead of copying its memory "
        "while it runs (by default it is stopped only to copy what it wrote during the "
        "copy; each such page costs it one extra fault and is stored twice)");
    ck_cmd->add_option(
        "--parent", ck.parent,
        "Like --incremental, but fail unless IMAGE is the program's last checkpoint");
    ck_cmd->add_flag("--json", ck.json, "Print image path, pause, sizes and phases as JSON");
    ck_cmd
        ->add_option("--compress", ck.compress,
                     "Compress memory pages: zstd (smaller), lz4 (faster) or none (default). "
                     "1 MiB frames are compressed on one thread per CPU; frames that do not "
                     "shrink are stored as they are. vos restore decompresses into memory first")
        ->default_str("none");
    ck_cmd
        ->add_option("--progress", ck.progress,
                     "Show on stderr how much memory is written: auto (on a terminal, for a "
                     "checkpoint that takes over half a second), always (also into a file or "
                     "pipe: a line every 0.2 s, then a last one) or never")
        ->check(CLI::IsMember({"auto", "always", "never"}))
        ->default_str("auto");
    ck_cmd
        ->add_option("--page-cache", ck.page_cache,
                     "Write the memory pages through the page cache (yes) or straight to the "
                     "disk (no: O_DIRECT; the image neither fills memory nor pushes other files "
                     "out of the cache, but a restore right after reads it from the disk). auto "
                     "(default): no when the program's memory is more than half of the memory "
                     "available. Not with --compress")
        ->check(CLI::IsMember({"auto", "yes", "no"}))
        ->default_str("auto");
    ck_cmd->add_flag(
        "--with-files", ck.with_files,
        "Also store the content of the files the program has open for writing (read while it "
        "is stopped), so that vos restore --files=rewind can bring back a file it overwrote or "
        "cut shorter after this checkpoint. Without it, --files=rewind can only cut back a file "
        "that grew (vos records its size and a hash of what it held)");
    ck_cmd
        ->add_option("--file-data-limit", ck.file_data_limit,
                     "Most file content the image may hold: the deleted files the program has "
                     "open (always stored: nothing else holds them) and, with --with-files, the "
                     "files it writes. A number of bytes, or with K, M, G or T (powers of 1024); "
                     "over it the checkpoint is refused, naming the files")
        ->default_str("256M");
  }

  vos::cli::RestoreArgs rs;
  CLI::App* rs_cmd = nullptr;
  if (builds(argc, argv, "restore")) {
    rs_cmd = app.add_subcommand("restore", "Rebuild a program from an image and let it continue");
    rs_cmd->add_option("image", rs.image, "Image file written by vos checkpoint");
    rs_cmd->add_option("--latest", rs.latest,
                       "Instead of IMAGE: the newest image of the program NAME in --dir (images "
                       "are named NAME-YYYYMMDD-HHMMSS-NNN.vos and sort in the order taken)");
    rs_cmd->add_option("--dir", rs.dir, "With --latest: where the images are (default: .)");
    rs_cmd->add_option("--name", rs.name, "Name for the restored program (default: the image's)");
    rs_cmd->add_flag("--detach,-d", rs.detach,
                     "Return once the program runs again; its terminal or pipe output goes to a "
                     "log (vos logs NAME)");
    rs_cmd->add_flag(
        "--lazy", rs.lazy,
        "Let the program run before its memory is back: pages are copied in from the "
        "image on first touch and in the background (page data is verified once all "
        "is in; the program is killed if it is damaged). Needs root (CAP_SYS_PTRACE: only "
        "then does the kernel tell vos of the program's forks, whose memory it "
        "serves too)");
    rs_cmd->add_flag("--take-unix-sockets", rs.take_unix_sockets,
                     "Bind the program's listening unix sockets again even where a running "
                     "program listens (the original, most likely): new clients then reach only "
                     "the restored copy. Without it such a restore is refused");
    rs_cmd->add_flag("--json", rs.json, "Print name, pid and restore time as JSON");
    rs_cmd
        ->add_option(
            "--files", rs.files,
            "What to do with the files the program had open when they changed since the "
            "checkpoint (it ran on after a live checkpoint): check refuses a file that is gone or "
            "changed size, naming it; rewind brings the files it had open for writing back to "
            "their state at the checkpoint: one that only grew is cut back to its size then, once "
            "what it held then is found unchanged (vos hashed it), and one overwritten, cut "
            "shorter or gone is written back from the image if vos checkpoint --with-files "
            "stored it, else refused (a file it only read must be as it was); keep takes them as "
            "they are now (the program goes on at its recorded offsets). Deleted files are "
            "recreated from the image whatever this says")
        ->check(CLI::IsMember({"check", "rewind", "keep"}))
        ->default_str("check");
    rs_cmd->footer(
        "Exit status in the foreground: as for vos run (the program's own; 75 if it was "
        "checkpointed with --kill again).");
  }

  bool ps_json = false;
  CLI::App* ps_cmd = nullptr;
  if (builds(argc, argv, "ps")) {
    ps_cmd = app.add_subcommand("ps", "List the programs vos manages on this machine");
    ps_cmd->add_flag("--json", ps_json, "JSON array of {name, pid, ...}");
  }

  std::string inspect_image;
  bool inspect_json = false;
  CLI::App* in_cmd = nullptr;
  if (builds(argc, argv, "inspect")) {
    in_cmd = app.add_subcommand("inspect", "Describe an image: sections, threads, memory, fds");
    in_cmd->add_option("image", inspect_image, "Image file")->required();
    in_cmd->add_flag("--json", inspect_json, "Machine-readable output");
  }

  std::string logs_name;
  bool logs_follow = false;
  CLI::App* lg_cmd = nullptr;
  if (builds(argc, argv, "logs")) {
    lg_cmd = app.add_subcommand("logs",
                                "Show the output of a program started or restored with --detach");
    lg_cmd->add_option("name", logs_name, "Name of the program (also one that has ended)")
        ->required();
    lg_cmd->add_flag("--follow,-f", logs_follow, "Keep showing new output until the program ends");
  }

  vos::cli::AttachArgs at;
  CLI::App* at_cmd = nullptr;
  if (builds(argc, argv, "attach")) {
    at_cmd = app.add_subcommand(
        "attach",
        "Show a program's terminal here (started or restored from a terminal, or detached): "
        "the screen as it is now, then what it writes; what you type goes to it. Ctrl-\\ then "
        "d detaches (the program runs on); Ctrl-\\ twice sends one Ctrl-\\");
    at_cmd->add_option("name", at.name, "Name or host pid of the program (see vos ps)")->required();
    at_cmd->add_flag("--shared", at.shared,
                     "Watch and type along with the terminal attached now (by default this one "
                     "takes over and the other is detached)");
  }

  std::string merge_in, merge_out;
  bool merge_json = false;
  CLI::App* mg_cmd = nullptr;
  if (builds(argc, argv, "merge")) {
    mg_cmd = app.add_subcommand(
        "merge", "Copy into an incremental image the pages it takes from its parents");
    mg_cmd
        ->add_option("image", merge_in, "Incremental image written by vos checkpoint --incremental")
        ->required();
    mg_cmd
        ->add_option("-o,--output", merge_out,
                     "The standalone image to write (a new file; images built on IMAGE keep "
                     "needing IMAGE itself)")
        ->required();
    mg_cmd->add_flag("--json", merge_json, "Print pages, bytes and parents as JSON");
  }

  CLI11_PARSE(app, argc, argv);
  if (run_cmd != nullptr && run_cmd->parsed()) {
    if (!run.argv.empty() && run.argv.front() == "--") {
      run.argv.erase(run.argv.begin());
    }
    return vos::cli::cmd_run(run);
  }
  if (ck_cmd != nullptr && ck_cmd->parsed()) {
    return vos::cli::cmd_checkpoint(ck);
  }
  if (rs_cmd != nullptr && rs_cmd->parsed()) {
    return vos::cli::cmd_restore(rs);
  }
  if (ps_cmd != nullptr && ps_cmd->parsed()) {
    return vos::cli::cmd_ps(ps_json);
  }
  if (mg_cmd != nullptr && mg_cmd->parsed()) {
    return vos::cli::cmd_merge(merge_in, merge_out, merge_json);
  }
  if (lg_cmd != nullptr && lg_cmd->parsed()) {
    return vos::cli::cmd_logs(logs_name, logs_follow);
  }
  if (at_cmd != nullptr && at_cmd->parsed()) {
    return vos::cli::cmd_attach(at);
  }
  if (in_cmd != nullptr && in_cmd->parsed()) {
    return vos::cli::cmd_inspect(inspect_image, inspect_json);
  }
  return 2;
}
