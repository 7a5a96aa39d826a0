import React from 'react';
import {Composition} from 'remotion';
import {Card} from './Card';
import {cardSchema} from './schema';

export const RemotionRoot: React.FC = () => {
  return (
    <Composition
      id="Card"
      component={Card}
      schema={cardSchema}
      width={1280}
      height={720}
      fps={30}
      durationInFrames={120}
      defaultProps={{
        title: 'Rendered on the farm',
        image: 'badge.png',
        items: [
          {label: 'Chunks', value: 72},
          {label: 'Frames', value: 100},
          {label: 'Seams', value: 0},
        ],
        music: 'music.mp3',
        accent: '#ff7828',
      }}
    />
  );
};
