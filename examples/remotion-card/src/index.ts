// The entry point Remotion's bundler starts from: it registers the compositions.
import {registerRoot} from 'remotion';
import {RemotionRoot} from './Root';

registerRoot(RemotionRoot);
