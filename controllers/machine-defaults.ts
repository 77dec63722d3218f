// Defaults of the Machine controller that `dockmesh --help` shows: apart from controllers/machine.ts so
// that the CLI's help does not load the controller, SSH and the API client.

/** A Ready Machine's host is checked this often between resyncs (MachineControllerDeps.readyCheckMs). */
export const DEFAULT_READY_CHECK_MS = 30_000;
