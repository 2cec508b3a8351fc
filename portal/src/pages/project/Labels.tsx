import { LabelList } from '../../components/art-LabelList';
import { may } from '../../lib/art-types';
import { messages } from '../../lib/i18n';
import type { ProjectProps } from '../../lib/types';

const t = messages({
  en: { title: 'Labels', intro: 'Labels of this project. Artifacts in the project can carry them, along with the global labels.' },
  zh: { title: '标签', intro: '本项目的标签。项目中的制品可以添加这些标签以及全局标签。' },
});

export function ProjectLabels({ project, role }: ProjectProps) {
  return (
    <section>
      <h2>{t('title')}</h2>
      <p class="muted">{t('intro')}</p>
      <LabelList scope="p" projectId={project.project_id} canEdit={may.manageLabels(role)} />
    </section>
  );
}
