import { describe, expect, test } from "bun:test";
import { Barrier, Command, Status, WorkerState } from "../../src/format/protocol";
import {
  renderJson, renderListText, renderReply, renderStatusText, renderWorkerList, type Reply,
} from "../../src/coordinator/render";

const ADDRESS = { host: "localhost", port: 7779 };

function reply(fields: Partial<Reply> & { command: number }): Reply {
  return { status: Status.success, peerCount: 0, running: false, intervalS: 0, ...fields };
}

describe("coordinator render: text", () => {
  test("status text matches dmtcp_command --status", () => {
    const text = renderStatusText(reply({
      command: Command.status, peerCount: 2, running: true, intervalS: 30,
    }), ADDRESS);
    expect(text).toBe(
      "Coordinator:\n  Host: localhost\n  Port: 7779\n" +
      "Status...\n  NUM_PEERS=2\n  RUNNING=yes\n  CKPT_INTERVAL=30\n",
    );
  });

  test("interval 0 reads 'checkpoint manually' and a default port says so", () => {
    const text = renderStatusText(reply({ command: Command.status }), {
      ...ADDRESS, portIsDefault: true,
    });
    expect(text).toBe(
      "Coordinator:\n  Host: localhost\n  Port: 7779 (default port)\n" +
      "Status...\n  NUM_PEERS=0\n  RUNNING=no\n  CKPT_INTERVAL=0 (checkpoint manually)\n",
    );
  });

  test("list text is the coordinator block followed by the worker list", () => {
    const listText = renderWorkerList([{
      workerId: 40000, name: "a.out", host: "node1", realPid: 255,
      state: WorkerState.suspended, barrier: Barrier.suspended,
    }], 0x1fn);
    expect(listText).toBe(
      "Client List:\n#, PROG[virtPID:realPID]@HOST, DMTCP-UNIQUEPID, STATE, BARRIER\n" +
      "1, a.out[40000:255]@node1, 1f-40000-ff, WorkerState::SUSPENDED, DMT:SUSPEND\n",
    );
    expect(renderListText(reply({ command: Command.list, listText }), ADDRESS))
      .toBe(`Coordinator:\n  Host: localhost\n  Port: 7779\n${listText}`);
  });

  test("interval prints DMTCP's confirmation; kill prints nothing", () => {
    const options = { ...ADDRESS, json: false };
    expect(renderReply(reply({ command: Command.interval, intervalS: 5 }), options))
      .toBe("Interval changed to 5\n");
    expect(renderReply(reply({ command: Command.kill }), options)).toBe("");
  });
});

describe("coordinator render: JSON", () => {
  test("status keys come in DMTCP's order", () => {
    const json = renderJson(reply({
      command: Command.status, peerCount: 1, running: true,
    }), ADDRESS);
    expect(json).toBe(
      '{"schema_version":1,"command":"DMT_STATUS","command_status":"DMT_COORD_SUCCESS",' +
      '"coordinator_host":"localhost","coordinator_port":7779,' +
      '"num_peers":1,"running":true,"checkpoint_interval":0}',
    );
  });

  test("each command carries its own extras, only on success", () => {
    const keys = (fields: Partial<Reply> & { command: number }) =>
      Object.keys(JSON.parse(renderJson(reply(fields), ADDRESS))).slice(5);
    expect(keys({ command: Command.list, listText: "x" })).toEqual(["workers"]);
    expect(keys({ command: Command.checkpoint })).toEqual(["num_peers"]);
    expect(keys({ command: Command.blocking_checkpoint })).toEqual(["num_peers"]);
    expect(keys({ command: Command.kill_after_checkpoint })).toEqual(["num_peers"]);
    expect(keys({ command: Command.interval })).toEqual(["checkpoint_interval"]);
    expect(keys({ command: Command.kill })).toEqual([]);
    expect(keys({ command: Command.checkpoint, status: Status.not_running })).toEqual([]);
  });

  test("command and status names follow DMTCP; host strings are escaped", () => {
    const parse = (json: string) => JSON.parse(json) as Record<string, unknown>;
    const notRunning = parse(renderJson(reply({
      command: Command.checkpoint, status: Status.not_running,
    }), ADDRESS));
    expect([notRunning.command, notRunning.command_status])
      .toEqual(["DMT_CHECKPOINT", "DMT_COORD_NOT_RUNNING"]);
    const invalid = parse(renderJson(reply({
      command: Command.kill_after_checkpoint, status: Status.invalid_command,
    }), ADDRESS));
    expect([invalid.command, invalid.command_status])
      .toEqual(["DMT_KILL_AFTER_CKPT", "DMT_COORD_INVALID_COMMAND"]);
    const notFound = renderJson({ command: Command.quit, status: "not_found" },
      { host: 'a"b\n', port: 1 });
    expect(notFound).toBe(
      '{"schema_version":1,"command":"DMT_QUIT","command_status":"DMT_COORD_NOT_FOUND",' +
      '"coordinator_host":"a\\"b\\n","coordinator_port":1}',
    );
  });

  test("the JSON reply is one line", () => {
    const text = renderReply(reply({ command: Command.interval, intervalS: 7 }),
      { ...ADDRESS, json: true });
    expect(text).toBe(
      '{"schema_version":1,"command":"DMT_UPDATE_CKPT_INTERVAL",' +
      '"command_status":"DMT_COORD_SUCCESS","coordinator_host":"localhost",' +
      '"coordinator_port":7779,"checkpoint_interval":7}\n',
    );
  });
});
