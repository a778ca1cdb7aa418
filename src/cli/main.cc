// Host side (CLI): `vos` command line.
#include <CLI/CLI.hpp>

#include "cli/commands.h"

int main(int argc, char** argv) {
  CLI::App app{
      "vos: checkpoint, restore and move unmodified running programs.\n"
      "Start a program under vos, checkpoint it to an image, kill it, restore it later."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "vos 0.1.0");

  vos::cli::RunArgs run;
  auto* run_cmd =
      app.add_subcommand("run", "Start PROGRAM under vos (it can then be checkpointed)");
  run_cmd->add_option("--name", run.name, "Name to refer to the program by (default: PROGRAM-N)");
  run_cmd->add_flag("--detach,-d", run.detach,
                    "Return once the program runs (stdin becomes /dev/null)");
  run_cmd->add_flag("--json", run.json, "With --detach: print {name, pid} as JSON");
  run_cmd->add_option("program", run.argv, "PROGRAM [ARGS...] (put -- before it)")->required();
  run_cmd->prefix_command();

  vos::cli::CheckpointArgs ck;
  auto* ck_cmd = app.add_subcommand("checkpoint", "Write an image of a running program");
  ck_cmd->add_option("target", ck.target, "Name or host pid of the program (see vos ps)")
      ->required();
  ck_cmd->add_option("--dir", ck.dir, "Directory for the image (default: current directory)");
  ck_cmd->add_flag("--kill", ck.kill,
                   "End the program once the image is on disk; it never runs past the image");
  ck_cmd->add_flag("--incremental,-i", ck.incremental,
                   "Store only the pages written since this program's last checkpoint; the rest "
                   "is read from that image (and its parents) on restore. The first one is full "
                   "and starts tracking writes");
  ck_cmd->add_flag("--no-precopy", ck.no_precopy,
                   "Stop the program for a copy-on-write snapshot instead of copying its memory "
                   "while it runs (by default it is stopped only to copy what it wrote during the "
                   "copy; each such page costs it one extra fault and is stored twice)");
  ck_cmd->add_option("--parent", ck.parent,
                     "Like --incremental, but fail unless IMAGE is the program's last checkpoint");
  ck_cmd->add_flag("--json", ck.json, "Print image path, pause, sizes and phases as JSON");
  ck_cmd
      ->add_option("--compress", ck.compress,
                   "Compress memory pages: zstd (smaller), lz4 (faster) or none (default). "
                   "1 MiB frames are compressed on one thread per CPU; frames that do not "
                   "shrink are stored as they are. vos restore decompresses into memory first")
      ->default_str("none");

  vos::cli::RestoreArgs rs;
  auto* rs_cmd =
      app.add_subcommand("restore", "Rebuild a program from an image and let it continue");
  rs_cmd->add_option("image", rs.image, "Image file written by vos checkpoint")->required();
  rs_cmd->add_option("--name", rs.name, "Name for the restored program (default: the image's)");
  rs_cmd->add_flag("--detach,-d", rs.detach, "Return once the program runs again");
  rs_cmd->add_flag("--lazy", rs.lazy,
                   "Let the program run before its memory is back: pages are copied in from the "
                   "image on first touch and in the background (page data is verified once all "
                   "is in; the program is killed if it is damaged)");
  rs_cmd->add_flag("--json", rs.json, "Print name, pid and restore time as JSON");

  bool ps_json = false;
  auto* ps_cmd = app.add_subcommand("ps", "List the programs vos manages on this machine");
  ps_cmd->add_flag("--json", ps_json, "JSON array of {name, pid, ...}");

  std::string inspect_image;
  bool inspect_json = false;
  auto* in_cmd = app.add_subcommand("inspect", "Describe an image: sections, threads, memory, fds");
  in_cmd->add_option("image", inspect_image, "Image file")->required();
  in_cmd->add_flag("--json", inspect_json, "Machine-readable output");

  std::string merge_in, merge_out;
  bool merge_json = false;
  auto* mg_cmd = app.add_subcommand(
      "merge", "Copy into an incremental image the pages it takes from its parents");
  mg_cmd->add_option("image", merge_in, "Incremental image written by vos checkpoint --incremental")
      ->required();
  mg_cmd
      ->add_option("-o,--output", merge_out,
                   "The standalone image to write (a new file; images built on IMAGE keep "
                   "needing IMAGE itself)")
      ->required();
  mg_cmd->add_flag("--json", merge_json, "Print pages, bytes and parents as JSON");

  CLI11_PARSE(app, argc, argv);
  if (run_cmd->parsed()) {
    if (!run.argv.empty() && run.argv.front() == "--") {
      run.argv.erase(run.argv.begin());
    }
    return vos::cli::cmd_run(run);
  }
  if (ck_cmd->parsed()) {
    return vos::cli::cmd_checkpoint(ck);
  }
  if (rs_cmd->parsed()) {
    return vos::cli::cmd_restore(rs);
  }
  if (ps_cmd->parsed()) {
    return vos::cli::cmd_ps(ps_json);
  }
  if (mg_cmd->parsed()) {
    return vos::cli::cmd_merge(merge_in, merge_out, merge_json);
  }
  if (in_cmd->parsed()) {
    return vos::cli::cmd_inspect(inspect_image, inspect_json);
  }
  return 2;
}
