// The layers of src/ and the one door to Atlas, checked in CI (`npm run lint:deps`).
// Imports point one way: a layer may import the layers listed before it, never one after it.
//   time, errors → observability → atlas → replicas → backup → jobs, callers → downloads, webhooks → graphql → security
//   → config → gateway → index
// (security's plugins build on the GraphQL error mapping; the configuration may name their options.)
// The simulator stands apart: only the entry point (demo mode) loads it, and it needs only time/.
const LAYERS = [
  ['time', 'errors'],
  ['observability'],
  ['atlas'],
  ['replicas'],
  ['backup'],
  ['jobs', 'callers'],
  ['downloads', 'webhooks'],
  ['graphql'],
  ['security'],
  ['config'],
  ['gateway'],
  ['index'],
];
// A layer name as a path: a folder of src/, or src/<name>.ts and src/<name>-*.ts for the top files.
const at = (names) => `^src/(${names.join('|')})[/.-]`;

const upward = LAYERS.flatMap((layer, i) => {
  const above = LAYERS.slice(i + 1).flat();
  return above.length === 0
    ? []
    : [
        {
          name: `no-upward-from-${layer.join('-')}`,
          comment: `${layer.join(', ')} may not import ${above.join(', ')}: layers import only downward`,
          severity: 'error',
          from: { path: at(layer) },
          to: { path: at(above) },
        },
      ];
});

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    ...upward,
    {
      name: 'callers-not-jobs',
      comment: 'callers (who is calling) know nothing of jobs; jobs may ask who the caller is',
      severity: 'error',
      from: { path: '^src/callers/' },
      to: { path: '^src/jobs/' },
    },
    {
      name: 'config-not-graphql',
      comment: 'the configuration is plain validated data: it builds no schema, plugin or resolver',
      severity: 'error',
      from: { path: '^src/config/' },
      to: { path: '^src/graphql/' },
    },
    {
      name: 'one-door-to-atlas',
      comment:
        'only the backup service (and the replica state that reads exchanges, and the wiring) may use the Atlas client; others may import its error classes',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(atlas|backup|replicas|config|gateway|index)[/.-]' },
      to: { path: '^src/atlas/', pathNot: '^src/atlas/errors\\.ts$' },
    },
    {
      name: 'simulator-apart',
      comment: 'the simulator is loaded only by the entry point in demo mode, never by the gateway',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(simulator/|index\\.ts$)' },
      to: { path: '^src/simulator/' },
    },
    {
      name: 'simulator-self-contained',
      comment:
        'the simulator plays Atlas: it shares nothing with the gateway but the clock (its command line reads its variables through the one configuration module)',
      severity: 'error',
      from: { path: '^src/simulator/', pathNot: '^src/simulator/(cli|options-from-config)\\.ts$' },
      to: { path: '^src/', pathNot: '^src/(simulator|time)/' },
    },
    {
      name: 'simulator-config-only',
      comment:
        'the simulator reads its own variables through the configuration module, nothing else of the gateway',
      severity: 'error',
      from: { path: '^src/simulator/(cli|options-from-config)\\.ts$' },
      to: { path: '^src/', pathNot: '^src/(simulator|time|config)/' },
    },
    {
      name: 'no-circular',
      severity: 'error',
      from: { path: '^src/' },
      to: { circular: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    includeOnly: '^src/',
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
